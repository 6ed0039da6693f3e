// TODO(foundation): implement server/model/checkpoint.h
