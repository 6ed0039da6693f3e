// TODO(foundation): implement server/model/blas_info.h
