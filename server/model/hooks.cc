// TODO(foundation): implement server/model/hooks.h
