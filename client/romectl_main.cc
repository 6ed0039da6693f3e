// romectl: command-line client for romed. See romectl_args.h for the syntax
// and `romectl help` for the commands.
#include <iostream>
#include <string>
#include <vector>

#include "client/romectl_commands.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv, argv + argc);
  return romed::client::RomectlMain(args, std::cout, std::cerr);
}
