// TODO(foundation): implement server/model/scorer.h
