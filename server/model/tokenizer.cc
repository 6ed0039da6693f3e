// TODO(foundation): implement server/model/tokenizer.h
