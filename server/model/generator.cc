// TODO(foundation): implement server/model/generator.h
