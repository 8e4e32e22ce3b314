#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of worker threads started once and reused for every parallel step of the forward
/// pass. `run` hands the same job to every participant (the caller is participant 0) and returns
/// when all have finished. Workers spin briefly between jobs (a decode step issues a few hundred
/// of them) and then sleep on a condition variable, so an idle engine costs no CPU. The forward
/// pass and the kernel benchmark (`outpost bench --kernels`) both run on it.
public final class ThreadPool: @unchecked Sendable {
    /// Participants, the calling thread included.
    public let count: Int

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []
    /// The current job; written by `run` before the generation is bumped (release) and read by
    /// workers after they see the bump (acquire).
    private var job: ((Int) -> Void)?

    /// Spin iterations before a worker goes to sleep (roughly 50–200 µs).
    private static let spinLimit = 20_000

    public init(threads: Int) {
        count = max(1, threads)
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 1..<count {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let ctx = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                ctx.pool.workerLoop(index: ctx.index)
                return nil
            }, context.toOpaque())
            if rc == 0 {
                self.threads.append(thread)
            } else {
                context.release()
            }
        }
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Participants that actually run jobs (fewer than `count` if a thread could not start).
    public var activeCount: Int { threads.count + 1 }

    /// Runs `body(i)` for i in 0..<activeCount, i = 0 on the calling thread; returns when all are done.
    public func run(_ body: @escaping (Int) -> Void) {
        let workers = threads.count
        if workers == 0 {
            body(0)
            return
        }
        job = body
        pending.store(workers, ordering: .relaxed)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        body(0)
        var spins = 0
        while pending.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > Self.spinLimit { sched_yield() }
        }
        job = nil
    }

    /// Splits `0..<total` into `parts` near-equal contiguous ranges; returns range `index`.
    @inline(__always)
    public static func chunk(_ total: Int, parts: Int, index: Int) -> Range<Int> {
        let base = total / parts, extra = total % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins > Self.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        pthread_cond_wait(condition, mutex)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    spins = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            job?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerContext {
    // Unowned: the pool's deinit joins the workers, so it outlives every use here.
    unowned(unsafe) let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
