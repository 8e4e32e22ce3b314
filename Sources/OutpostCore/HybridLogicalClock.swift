import FoundationEssentials
import Synchronization

/// A thread-safe hybrid logical clock over a wall clock (the system clock unless one is injected).
public final class HybridLogicalClock: Sendable {
    public typealias WallClock = @Sendable () -> UInt64

    private let state: Mutex<HLC>
    private let wallClock: WallClock

    public init(last: HLCTimestamp = .zero, maxDriftMillis: UInt64 = HLC.defaultMaxDriftMillis,
                wallClock: @escaping WallClock = HybridLogicalClock.systemWallMillis) {
        state = Mutex(HLC(last: last, maxDriftMillis: maxDriftMillis))
        self.wallClock = wallClock
    }

    /// Milliseconds since the Unix epoch from the system clock.
    public static let systemWallMillis: WallClock = {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    public func tick() -> HLCTimestamp {
        let wall = wallClock()
        return state.withLock { $0.tick(wallMillis: wall) }
    }

    public func receive(_ remote: HLCTimestamp) throws(HLCError) -> HLCTimestamp {
        let wall = wallClock()
        return try state.withLock { (clock: inout HLC) throws(HLCError) -> HLCTimestamp in
            try clock.receive(remote, wallMillis: wall)
        }
    }

    /// Moves the clock past `timestamp` without the drift check (for readings this gateway made
    /// itself before a restart, e.g. the newest tombstone in its own store).
    public func advance(past timestamp: HLCTimestamp) {
        let wall = wallClock()
        state.withLock { clock in
            if timestamp >= clock.last {
                clock = HLC(last: timestamp, maxDriftMillis: clock.maxDriftMillis)
                _ = clock.tick(wallMillis: wall)
            }
        }
    }

    public var last: HLCTimestamp { state.withLock { $0.last } }
}
