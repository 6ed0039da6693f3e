// TODO(foundation): implement server/model/safetensors.h
