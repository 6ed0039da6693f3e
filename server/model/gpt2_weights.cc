// TODO(foundation): implement server/model/gpt2_weights.h
