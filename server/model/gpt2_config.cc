// TODO(foundation): implement server/model/gpt2_config.h
