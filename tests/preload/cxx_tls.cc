// SPDX-License-Identifier: MIT
//
// cxx_tls - C++ thread_local objects whose destructors allocate (they run
// at thread exit, around the allocator's own thread-exit handling), and
// static objects whose destructors allocate after main returns.  The
// output is the same under any allocator.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<long> destroyed_chars{0};
std::atomic<int> destroyed{0};

struct Tracker {
  std::vector<std::string> log;
  std::map<int, std::string> table;
  Tracker() {
    for (int i = 0; i < 100; i++) table[i] = std::string(static_cast<std::size_t>(i * 10), 'a');
  }
  ~Tracker() {
    // Allocate while the thread is going away.
    std::string summary;
    for (auto &kv : table) summary += kv.second.substr(0, 3) + ",";
    std::vector<std::string> copy(log);
    copy.push_back(summary);
    auto extra = std::make_unique<std::vector<char>>(300000, 'z');
    long n = 0;
    for (auto &s : copy) n += static_cast<long>(s.size());
    destroyed_chars += n + static_cast<long>(extra->size());
    destroyed++;
  }
};

thread_local Tracker tracker;
thread_local std::string tls_text = "thread-local text that is long enough to be on the heap";

struct StaticOne {
  std::vector<std::string> v;
  ~StaticOne() {
    std::string s;
    for (int i = 0; i < 1000; i++) s += std::to_string(i);
    std::printf("static destructor: %zu chars, %d thread_local destructors, %ld chars\n",
                s.size(), destroyed.load(), destroyed_chars.load());
    std::fflush(stdout);
  }
};

StaticOne static_one;

}  // namespace

int main() {
  for (int round = 0; round < 5; round++) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; i++)
      threads.emplace_back([i] {
        tracker.log.push_back(tls_text + std::to_string(i));
        for (int k = 0; k < 200; k++) tracker.log.push_back(std::string(static_cast<std::size_t>(k), 'q'));
        tls_text += tls_text;
      });
    for (auto &t : threads) t.join();
  }
  static_one.v.push_back("main");
  tracker.log.push_back("main thread");
  std::printf("threads done: %d thread_local destructors\n", destroyed.load());
  return 0;
}
