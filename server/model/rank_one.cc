// TODO(foundation): implement server/model/rank_one.h
