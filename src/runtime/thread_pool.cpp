#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

namespace {

// Workers wait for a job; the caller participates, so N threads = N-1 workers + caller.
class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }

  void run(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)> &fn) {
    int64_t n = end - begin;
    if (n <= 0) return;
    int threads = size();
    if (threads == 1 || n == 1 || in_job_) {
      fn(begin, end);
      return;
    }
    std::unique_lock<std::mutex> job_lock(job_mutex_);  // one parallel region at a time
    int64_t chunks = std::min<int64_t>(n, threads * 4);
    {
      std::lock_guard<std::mutex> g(m_);
      fn_ = &fn;
      begin_ = begin;
      end_ = end;
      chunks_ = chunks;
      next_.store(0);
      done_.store(0);
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> l(m_);
    done_cv_.wait(l, [&] { return done_.load() == chunks_; });
    fn_ = nullptr;
  }

 private:
  void work() {
    in_job_ = true;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= chunks_) break;
      int64_t n = end_ - begin_;
      int64_t b = begin_ + n * c / chunks_, e = begin_ + n * (c + 1) / chunks_;
      (*fn_)(b, e);
      if (done_.fetch_add(1) + 1 == chunks_) {
        std::lock_guard<std::mutex> g(m_);
        done_cv_.notify_all();
      }
    }
    in_job_ = false;
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stopping_ || (generation_ != seen && fn_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
      }
      work();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(m_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto &t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex m_, job_mutex_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  uint64_t generation_ = 0;
  bool stopping_ = false;
  static thread_local bool in_job_;
};

thread_local bool ThreadPool::in_job_ = false;

int default_threads() {
  if (const char *e = std::getenv("KILN_THREADS")) {
    int n = std::atoi(e);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool &pool() {
  static ThreadPool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(std::max(1, n)); }
void parallel_for(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)> &fn) {
  pool().run(begin, end, fn);
}

}  // namespace kiln

extern "C" void kiln_parallel_for(void (*body)(void *, int64_t, int64_t), void *closure,
                                  int64_t begin, int64_t end) {
  kiln::parallel_for(begin, end, [&](int64_t b, int64_t e) { body(closure, b, e); });
}
