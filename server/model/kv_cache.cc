// TODO(foundation): implement server/model/kv_cache.h
