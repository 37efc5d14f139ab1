// A crash of brisk-cli leaves its stack on stderr: on a lent GPU machine a
// run is seldom repeatable, and a core dump does not come back.
#pragma once

namespace brisk::cli {

// On SIGABRT, SIGSEGV, SIGBUS, SIGFPE or SIGILL: print the signal and the
// stack to stderr, then die of the same signal (exit status as before).
void install_fatal_signal_handler();

}  // namespace brisk::cli
