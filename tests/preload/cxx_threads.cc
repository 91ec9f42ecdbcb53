// SPDX-License-Identifier: MIT
//
// cxx_threads - C++ through the malloc replacement: operator new/delete
// (libstdc++ calls malloc/free), std::vector, std::string, std::map,
// std::thread, objects made on one thread and destroyed on another through
// a queue, and exceptions (__cxa_allocate_exception) thrown across
// threads.  Run with LD_PRELOAD and linked with -lfancymalloc; prints the
// same under glibc.  "cxx_threads --which" prints the library serving
// malloc.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <dlfcn.h>

namespace {

const char *which_malloc() {
  void *(*volatile m)(std::size_t) = std::malloc;
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(m), &info) == 0 || info.dli_fname == nullptr)
    return "unknown";
  if (std::strstr(info.dli_fname, "libfancymalloc")) return "libfancymalloc";
  if (std::strstr(info.dli_fname, "libc.so")) return "glibc";
  return info.dli_fname;
}

struct Item {
  std::string name;
  std::vector<long> values;
  std::map<std::string, std::string> attrs;
  explicit Item(int i) : name("item-" + std::to_string(i)) {
    values.reserve(static_cast<std::size_t>(i % 200));
    for (int k = 0; k < i % 200; k++) values.push_back(static_cast<long>(k) * i);
    if (i % 5 == 0) attrs["big"] = std::string(static_cast<std::size_t>(1000 + i % 70000), 'x');
    attrs["name"] = name;
  }
};

template <class T>
class Queue {
 public:
  void push(T v) {
    {
      std::lock_guard<std::mutex> g(m_);
      q_.push_back(std::move(v));
    }
    cv_.notify_one();
  }
  T pop() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [this] { return !q_.empty(); });
    T v = std::move(q_.front());
    q_.pop_front();
    return v;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> q_;
};

constexpr int kProducers = 3;
constexpr int kItems = 20000;

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1 && std::strcmp(argv[1], "--which") == 0) {
    std::printf("%s\n", which_malloc());
    return 0;
  }
  // Producers make objects; consumers destroy them on other threads.
  Queue<std::unique_ptr<Item>> queue;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; p++)
    producers.emplace_back([&queue, p] {
      for (int i = p; i < kItems; i += kProducers) queue.push(std::make_unique<Item>(i));
      queue.push(nullptr);
    });
  std::mutex totals_lock;
  long total_values = 0;
  std::size_t total_chars = 0;
  std::map<std::string, int> seen;
  std::vector<std::thread> consumers;
  int done = 0;
  for (int c = 0; c < 2; c++)
    consumers.emplace_back([&] {
      std::map<std::string, int> local;
      long values = 0;
      std::size_t chars = 0;
      for (;;) {
        {
          std::lock_guard<std::mutex> g(totals_lock);
          if (done >= kProducers) break;
        }
        std::unique_ptr<Item> item = queue.pop();
        if (!item) {
          // One end mark per producer; after the last, pass one on to
          // wake the other consumer.  FIFO: every item came before.
          std::lock_guard<std::mutex> g(totals_lock);
          if (++done >= kProducers) {
            queue.push(nullptr);
            break;
          }
          continue;
        }
        for (long v : item->values) values += v;
        for (auto &kv : item->attrs) chars += kv.first.size() + kv.second.size();
        local[item->name.substr(0, 6)]++;
      }
      std::lock_guard<std::mutex> g(totals_lock);
      total_values += values;
      total_chars += chars;
      for (auto &kv : local) seen[kv.first] += kv.second;
    });
  for (auto &t : producers) t.join();
  for (auto &t : consumers) t.join();

  // Exceptions carried from worker threads to main.
  std::vector<std::exception_ptr> errors(8);
  std::vector<std::thread> throwers;
  for (int i = 0; i < 8; i++)
    throwers.emplace_back([&errors, i] {
      try {
        std::vector<std::string> v(static_cast<std::size_t>(100 * (i + 1)), std::string(50, 'e'));
        throw std::runtime_error("error from thread " + std::to_string(i) + " after " +
                                 std::to_string(v.size()) + " strings");
      } catch (...) {
        errors[static_cast<std::size_t>(i)] = std::current_exception();
      }
    });
  for (auto &t : throwers) t.join();
  std::size_t error_chars = 0;
  for (auto &e : errors) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception &ex) {
      error_chars += std::strlen(ex.what());
    }
  }

  // Large vectors and strings grown step by step (realloc-like growth).
  std::vector<std::string> lines;
  std::string all;
  for (int i = 0; i < 100000; i++) {
    lines.push_back(std::to_string(i * 31));
    all += lines.back();
  }
  std::printf("items: %d, values: %ld, chars: %zu, prefixes: %zu\n", kItems, total_values,
              total_chars, seen.size());
  std::printf("exceptions: %zu chars\n", error_chars);
  std::printf("lines: %zu, text: %zu\n", lines.size(), all.size());
  return 0;
}
