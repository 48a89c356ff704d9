#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

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

// The CPUs this process may run on (empty where that cannot be known).
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
#endif
  return cpus;
}

int current_cpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

bool pin_to(std::thread::native_handle_type t, int cpu) {
#if defined(__linux__)
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return pthread_setaffinity_np(t, sizeof one, &one) == 0;
#else
  (void)t, (void)cpu;
  return false;
#endif
}

bool pin_self(int cpu) {
#if defined(__linux__)
  return pin_to(pthread_self(), cpu);
#else
  (void)cpu;
  return false;
#endif
}

// Workers wait for a job (spinning briefly, then sleeping: small models run hundreds of
// short parallel loops, each of which would otherwise pay a futex wake-up); the caller
// participates, so N threads = N-1 workers + caller.
//
// Each worker is pinned to its own CPU when the process may use at least N CPUs (unless
// KILN_PIN_THREADS=0). Unpinned, Linux sometimes stacked the worker on the caller's CPU
// and kept it there (the two wake each other every loop, so both look cache-hot to the
// load balancer): the pool then ran slower than one thread, for hundreds of runs (a 3x3
// stride-2 conv at batch 8: 11.5 ms -> 25 ms; 1 thread 19.5 ms). The caller is the
// application's thread and is never pinned; when a job starts on a CPU a worker holds,
// that worker moves to a CPU no thread of the pool is on.
class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    stopping_flag_.store(false);
    worker_cpu_.assign(static_cast<size_t>(std::max(0, n - 1)), -1);
    cpus_.clear();
    const char *pin = std::getenv("KILN_PIN_THREADS");
    if (n > 1 && !(pin && std::string(pin) == "0")) {
      std::vector<int> cpus = allowed_cpus();
      if (static_cast<int>(cpus.size()) >= n) cpus_ = cpus;
    }
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i - 1); });
    std::lock_guard<std::mutex> g(m_);
    for (int i = 1; i < n && !cpus_.empty(); ++i) {
      if (pin_to(workers_[i - 1].native_handle(), cpus_[i])) worker_cpu_[i - 1] = cpus_[i];
    }
  }

  std::vector<int> worker_cpus() {
    std::lock_guard<std::mutex> g(m_);
    return worker_cpu_;
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
      caller_cpu_ = cpus_.empty() ? -1 : current_cpu();
      done_.store(0);
      next_.store(0);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    work();
    // The caller spins for the chunks still running elsewhere (a worker finishing its last
    // chunk then needs no futex wake-up): up to 2 ms when the workers are pinned to other
    // CPUs, only 10 us otherwise (unpinned, a long spin could keep a worker stacked on the
    // caller's CPU from its chunks).
    spin_until([&] { return done_.load() == n; }, std::chrono::microseconds(cpus_.empty() ? 10 : 2000));
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

  // Under m_: a pinned worker on the CPU the job's caller runs on moves to a CPU that no
  // thread of the pool holds (there is one: the pool pins n-1 workers to n or more CPUs).
  void avoid_caller(size_t w) {
    if (caller_cpu_ < 0 || worker_cpu_[w] != caller_cpu_) return;
    for (int c : cpus_) {
      if (c == caller_cpu_ || std::find(worker_cpu_.begin(), worker_cpu_.end(), c) != worker_cpu_.end()) continue;
      if (pin_self(c)) worker_cpu_[w] = c;
      return;
    }
  }

  void loop(size_t w) {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load() != seen || stopping_flag_.load(); });
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stopping_ || (generation_ != seen && fn_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
        active_.fetch_add(1);  // under m_, before the caller can close the job
        avoid_caller(w);
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
  std::vector<int> cpus_;        // CPUs the pool pins to (empty: workers not pinned)
  std::vector<int> worker_cpu_;  // per worker, under m_
  int caller_cpu_ = -1;          // the current job's caller's CPU, under m_
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
std::vector<int> pool_worker_cpus() { return pool().worker_cpus(); }
void set_num_threads(int n) { pool().resize(std::max(1, n)); }
void parallel_for(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)> &fn) {
  pool().run(begin, end, fn);
}

}  // namespace kiln

extern "C" void kiln_parallel_for(void (*body)(void *, int64_t, int64_t), void *closure,
                                  int64_t begin, int64_t end) {
  kiln::parallel_for(begin, end, [&](int64_t b, int64_t e) { body(closure, b, e); });
}
