#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

namespace {

// Spins for up to ~50 us while `ready` is false (a model runs many short parallel loops
// back to back; sleeping on the condition variable between them costs a wake-up each).
template <typename F>
void spin_until(F ready, std::chrono::microseconds limit = std::chrono::microseconds(50)) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (ready()) return;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - t0 > limit) return;
  }
}

// Workers wait for a job (spinning briefly, then sleeping: small models run hundreds of
// short parallel loops, each of which would otherwise pay a futex wake-up); the caller
// participates, so N threads = N-1 workers + caller.
class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    stopping_flag_.store(false);
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
    {
      std::lock_guard<std::mutex> g(m_);
      fn_ = &fn;
      begin_ = begin;
      end_ = end;
      done_.store(0);
      next_.store(0);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    work();
    // The caller spins only briefly for the chunks still running elsewhere (a worker
    // finishing its last chunk then needs no futex wake-up); spinning long kept a
    // descheduled worker from its chunks on this 2-vCPU machine.
    spin_until([&] { return done_.load() == n; }, std::chrono::microseconds(10));
    std::unique_lock<std::mutex> l(m_);
    done_cv_.wait(l, [&] { return done_.load() == n; });
    fn_ = nullptr;  // under m_: no worker joins this job any more
    l.unlock();
    // Workers that joined leave work() after one more (failed) chunk claim; none may still
    // be inside when the next job resets the counters.
    while (active_.load() != 0) std::this_thread::yield();
  }

 private:
  // Guided self-scheduling: each claim takes 1 / (2 * threads) of the items still left (at
  // least one), so early chunks are long (few claims, contiguous items sharing data) and
  // the last ones short: a thread that finishes first waits for at most one short chunk
  // (a fixed 4 chunks per thread left it idle for up to a quarter of a heavy loop, e.g.
  // 28 direct-conv rows of ~90 us each).
  void work() {
    in_job_ = true;
    const int64_t n = end_ - begin_, share = 2 * size();
    for (;;) {
      int64_t at = next_.load();
      int64_t len = 0;
      while (at < n) {
        len = std::max<int64_t>(1, (n - at) / share);
        if (next_.compare_exchange_weak(at, at + len)) break;
      }
      if (at >= n) break;
      (*fn_)(begin_ + at, begin_ + at + len);
      if (done_.fetch_add(len) + len == n) {
        std::lock_guard<std::mutex> g(m_);
        done_cv_.notify_all();
      }
    }
    in_job_ = false;
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load() != seen || stopping_flag_.load(); });
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stopping_ || (generation_ != seen && fn_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
        active_.fetch_add(1);  // under m_, before the caller can close the job
      }
      work();
      active_.fetch_sub(1);
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(m_);
      stopping_ = true;
      stopping_flag_.store(true);
    }
    cv_.notify_all();
    for (auto &t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex m_, job_mutex_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  std::atomic<int> active_{0};  // workers inside work()
  std::atomic<uint64_t> generation_{0};
  bool stopping_ = false;
  std::atomic<bool> stopping_flag_{false};  // stopping_, readable while spinning
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
