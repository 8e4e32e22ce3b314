import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Synchronization

/// A fixed set of threads that run one job together, for the kernel benchmark: the caller is
/// thread 0, `threads - 1` workers spin on a generation counter so that starting a round costs
/// well under a microsecond (a mat-vec at the model's smallest shape takes ~10 µs). Waiting
/// threads yield the CPU when a round takes long (a busy machine), workers sleep briefly when no
/// round has started for a while, and exit on `stop()`.
@available(macOS 15.0, *)
final class SpinThreadPool: @unchecked Sendable {
    let threads: Int
    private let generation = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    // Written by the caller before a round's generation is published (release), read by the
    // workers after they observe it (acquire).
    private var job: (@Sendable (_ thread: Int) -> Void)?

    init(threads: Int) {
        precondition(threads >= 1)
        self.threads = threads
        for index in 1..<threads {
            startThread(name: "outpost-bench-\(index)", stackSize: 1 << 20) { [self] in self.work(index) }
        }
    }

    /// Runs `body(thread)` on every thread of the pool and returns when all have finished.
    func run(_ body: @escaping @Sendable (_ thread: Int) -> Void) {
        job = body
        finished.store(0, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        body(0)
        var spins = 0
        while finished.load(ordering: .acquiring) < threads - 1 {
            spins += 1
            if spins > 20_000 { sched_yield() } // a worker was descheduled: let it run
        }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
    }

    private func work(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins > 2_000_000 {
                    usleep(50)
                } else if spins > 20_000 {
                    sched_yield()
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopped.load(ordering: .acquiring) { return }
            job?(index)
            finished.add(1, ordering: .releasing)
        }
    }
}
