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
    slots_ = std::vector<std::atomic<uint64_t>>(static_cast<size_t>(std::max(1, n)));
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
      // Ranges are packed as two 32-bit offsets; longer loops run without stealing.
      stealable_ = n < (int64_t{1} << 31);
      for (auto &slot : slots_) slot.store(0);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    work(0);
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
  // Guided self-scheduling with stealing. Each claim takes 1 / (2 * threads) of the items
  // still unclaimed (at least one), so early chunks are long (few claims, contiguous items
  // sharing data) and the last ones short. A thread runs its chunk front to back in pieces
  // (halves of what is left), the unstarted rest published in its slot; once nothing is
  // left to claim, a thread takes the back half of another thread's unstarted rest. So a
  // thread that falls behind (its core shared with another tenant for a while, or
  // descheduled) holds up the loop by at most the piece it is running, not by the rest of
  // its chunk. ResNet-50 at 2 threads with a busy process on the worker's CPU: 70 -> 66 ms
  // (4 of 4 pairs; 1 thread: 68); in quiet minutes unchanged, MobileNetV2 -2%.
  static uint64_t pack(int64_t lo, int64_t hi) { return static_cast<uint64_t>(lo) << 32 | static_cast<uint64_t>(hi); }
  static int64_t lo_of(uint64_t r) { return static_cast<int64_t>(r >> 32); }
  static int64_t hi_of(uint64_t r) { return static_cast<int64_t>(r & 0xffffffffu); }

  // The next range of this job for thread `self`: a claim, else a stolen half; false at the end.
  bool next_range(size_t self, int64_t n, int64_t &lo, int64_t &hi) {
    const int64_t share = 2 * size();
    int64_t at = next_.load();
    while (at < n) {
      int64_t len = std::max<int64_t>(1, (n - at) / share);
      if (next_.compare_exchange_weak(at, at + len)) {
        lo = at, hi = at + len;
        return true;
      }
    }
    if (!stealable_) return false;
    for (size_t k = 1; k < slots_.size(); ++k) {
      std::atomic<uint64_t> &victim = slots_[(self + k) % slots_.size()];
      uint64_t r = victim.load();
      while (lo_of(r) < hi_of(r)) {
        int64_t mid = lo_of(r) + (hi_of(r) - lo_of(r)) / 2;
        if (victim.compare_exchange_weak(r, pack(lo_of(r), mid))) {
          lo = mid, hi = hi_of(r);
          return true;
        }
      }
    }
    return false;
  }

  void work(size_t self) {
    in_job_ = true;
    const int64_t n = end_ - begin_;
    // Pieces of half what is left of the range (at least 1 / (64 * threads) of the loop):
    // a range runs in few calls (a call's first items can cost more, e.g. a separable
    // conv's halo rows), and half of it stays open to stealing while the first half runs.
    const int64_t min_piece = std::max<int64_t>(1, n / (64 * size()));
    std::atomic<uint64_t> &mine = slots_[self];
    int64_t lo = 0, hi = 0;
    while (next_range(self, n, lo, hi)) {
      if (!stealable_) {
        run_items(lo, hi, n);
        continue;
      }
      mine.store(pack(lo, hi));
      for (uint64_t r = mine.load(); lo_of(r) < hi_of(r);) {
        int64_t a = lo_of(r), b = std::min(hi_of(r), a + std::max(min_piece, (hi_of(r) - a + 1) / 2));
        if (!mine.compare_exchange_weak(r, pack(b, hi_of(r)))) continue;  // r reloaded
        run_items(a, b, n);
        r = mine.load();
      }
    }
    in_job_ = false;
  }

  void run_items(int64_t a, int64_t b, int64_t n) {
    (*fn_)(begin_ + a, begin_ + b);
    if (done_.fetch_add(b - a) + (b - a) == n) {
      std::lock_guard<std::mutex> g(m_);
      done_cv_.notify_all();
    }
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
      work(w + 1);
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
  // Per thread (the caller 0, worker w at w + 1): the rest of the range it is running,
  // packed (lo << 32 | hi) as offsets from begin_; others steal its back half.
  std::vector<std::atomic<uint64_t>> slots_;
  bool stealable_ = false;
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
