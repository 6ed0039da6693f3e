// TODO(foundation): implement server/model/gpt2_model.h
