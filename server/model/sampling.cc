// TODO(foundation): implement server/model/sampling.h
