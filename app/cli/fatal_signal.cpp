#include "cli/fatal_signal.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <initializer_list>

namespace brisk::cli {
namespace {

void write_str(const char* s) {
  // The return value only says how much reached stderr; nothing better can be done in a handler.
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, s, strlen(s));
}

void on_fatal_signal(int sig) {
  // Only async-signal-safe calls: write, backtrace (loaded before, see below), backtrace_symbols_fd.
  write_str("\nbrisk-cli: fatal signal ");
  char num[12];
  int i = sizeof num - 1;
  num[i] = '\0';
  for (int v = sig; i > 0 && (v > 0 || i == (int)sizeof num - 1); v /= 10) num[--i] = char('0' + v % 10);
  write_str(num + i);
  write_str(" (");
  write_str(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
  write_str("); stack:\n");
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  // SA_RESETHAND restored the default action: raising again dies of this signal.
  raise(sig);
}

}  // namespace

void install_fatal_signal_handler() {
  // backtrace() loads libgcc on its first call, which allocates: do it here, not in the handler.
  void* warm[1];
  backtrace(warm, 1);
  struct sigaction sa = {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigaction(sig, &sa, nullptr);
}

}  // namespace brisk::cli
