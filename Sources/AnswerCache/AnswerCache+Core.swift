import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Synchronization

extension AnswerCache {
    /// The state shared by callers and the flusher thread. The flusher holds a reference to this,
    /// not to the `AnswerCache`, so dropping the cache can shut it down.
    final class Core: Sendable {
        struct State: Sendable {
            var memory: MemoryTier
            var queue: WriteBehindQueue.StateMachine
            var stats = AnswerCacheStats()
            var flusherStarted = false
            /// The limits in force (`AnswerCache.reconfigure`).
            var settings: Settings
            /// The disk budget shrank: the flusher evicts down to it when it next runs.
            var diskBudgetCheck = false
        }

        let state: Mutex<State>
        let store: AnswerStore
        let configuration: Configuration
        /// Signalled when the flusher has something to do.
        let wake = DispatchSemaphore(value: 0)
        /// Signalled once by the flusher when it exits; every waiter re-signals it for the next.
        let finished = DispatchSemaphore(value: 0)

        init(configuration: Configuration, store: AnswerStore, tombstones: [Tombstone]) {
            var queue = WriteBehindQueue.StateMachine(
                capacity: configuration.queueCapacity, batchSize: configuration.batchSize,
                maxBatchSize: configuration.maxBatchSize,
                flushIntervalNanos: Settings.nanos(millis: configuration.flushIntervalMillis))
            for tombstone in tombstones { _ = queue.invalidate(tombstone) }
            state = Mutex(State(memory: MemoryTier(policy: EvictionPolicy(Settings(configuration))), queue: queue,
                                settings: Settings(configuration)))
            self.store = store
            self.configuration = configuration
        }

        static func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

        func startFlusher() {
            state.withLock { $0.flusherStarted = true }
            startThread(name: "outpost-flusher") { [self] in runFlusher() }
        }

        func shutdown() {
            let started = state.withLock { s -> Bool in
                _ = s.queue.close()
                return s.flusherStarted
            }
            guard started else { return }
            wake.signal()
            finished.wait()
            finished.signal()
            try? store.checkpoint()
        }

        private func runFlusher() {
            var lastMaintenance = configuration.wallClock()
            while true {
                let action = state.withLock { $0.queue.nextAction(nowNanos: Self.monotonicNanos()) }
                switch action {
                case .finish:
                    finished.signal()
                    return
                case .idle:
                    wake.wait()
                case .wait(let until):
                    _ = wake.wait(timeout: DispatchTime(uptimeNanoseconds: until))
                case .flush(let batch):
                    flush(batch)
                }
                if state.withLock({ s in defer { s.diskBudgetCheck = false }; return s.diskBudgetCheck }) {
                    let evicted = (try? store.enforceDiskBudget()) ?? 0
                    state.withLock { $0.stats.diskEvictions += evicted }
                }
                let now = configuration.wallClock()
                if now &- lastMaintenance >= configuration.maintenanceIntervalMillis {
                    lastMaintenance = now
                    maintain(nowMillis: now)
                }
            }
        }

        private func flush(_ batch: WriteBehindQueue.Batch) {
            let start = Self.monotonicNanos()
            let report: AnswerStore.WriteReport?
            do { report = try store.write(batch) } catch { report = nil }
            let micros = Int((Self.monotonicNanos() - start) / 1000)
            state.withLock { s in
                s.queue.flushCompleted()
                guard let report else {
                    s.stats.flushErrors += 1
                    return
                }
                s.stats.flushes += 1
                s.stats.flushed += report.written
                s.stats.fillsDiscarded += report.refused
                s.stats.diskEvictions += report.evicted
                s.stats.flushLatencyLastMicros = micros
                s.stats.flushLatencyMaxMicros = max(s.stats.flushLatencyMaxMicros, micros)
                s.stats.flushLatencyTotalMicros += micros
                s.stats.flushLatencyAverageMicros = s.stats.flushLatencyTotalMicros / s.stats.flushes
            }
            if let report, !batch.fills.isEmpty {
                configuration.onDurable?(.flushed(written: report.written, newestFill: batch.fills.map(\.hlc).max()))
            }
        }

        private func maintain(nowMillis: UInt64) {
            let horizon = AnswerCache.horizon(nowMillis: nowMillis, configuration: configuration)
            state.withLock { $0.queue.expireTombstones(before: horizon) }
            try? store.maintain(tombstoneHorizon: horizon, nowMillis: nowMillis)
        }
    }
}
