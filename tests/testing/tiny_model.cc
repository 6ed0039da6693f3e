// TODO(foundation): implement tests/testing/tiny_model.h
