/// The hybrid logical clock as a plain value: the last reading it handed out. Every reading is
/// strictly greater than the one before, whatever the wall clock does; `receive` moves it past a
/// remote reading so that causally later events always compare greater. AnswerCache stamps fills
/// and tombstones with it, and PeerSync uses the same clock for invalidations between gateways.
///
/// `HybridLogicalClock` wraps this value in a lock with a real wall clock.
public struct HLC: Sendable, Hashable {
    /// How far ahead of our wall clock a remote reading may be before `receive` refuses it, so a
    /// peer with a broken clock cannot drag every gateway's clock into the future.
    public static let defaultMaxDriftMillis: UInt64 = 60_000

    public private(set) var last: HLCTimestamp
    public let maxDriftMillis: UInt64

    public init(last: HLCTimestamp = .zero, maxDriftMillis: UInt64 = HLC.defaultMaxDriftMillis) {
        self.last = last
        self.maxDriftMillis = maxDriftMillis
    }

    /// A new local reading, greater than every reading seen so far.
    public mutating func tick(wallMillis: UInt64) -> HLCTimestamp {
        let wall = min(wallMillis, HLCTimestamp.maxWallMillis)
        if wall > last.wallMillis {
            last = HLCTimestamp(wallMillis: wall, logical: 0)
        } else {
            last = Self.successor(of: last)
        }
        return last
    }

    /// Merges a remote reading: the result is greater than both `remote` and every reading so far.
    public mutating func receive(_ remote: HLCTimestamp, wallMillis: UInt64) throws(HLCError) -> HLCTimestamp {
        let wall = min(wallMillis, HLCTimestamp.maxWallMillis)
        if remote.wallMillis > wall, remote.wallMillis - wall > maxDriftMillis {
            throw .drift(remote: remote, localWallMillis: wall, maxDriftMillis: maxDriftMillis)
        }
        let top = max(last, remote)
        if wall > top.wallMillis {
            last = HLCTimestamp(wallMillis: wall, logical: 0)
        } else {
            last = Self.successor(of: top)
        }
        return last
    }

    /// The next reading after `t`; a full logical counter carries into the millisecond.
    static func successor(of t: HLCTimestamp) -> HLCTimestamp {
        if t.logical < HLCTimestamp.maxLogical {
            return HLCTimestamp(rawValue: t.rawValue + 1)
        }
        return HLCTimestamp(wallMillis: t.wallMillis + 1, logical: 0)
    }
}

/// A remote clock reading that cannot be accepted.
public struct HLCError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable { case drift }
    private let code: Code
    public let remote: HLCTimestamp
    public let message: String

    private init(_ code: Code, remote: HLCTimestamp, message: String) {
        self.code = code
        self.remote = remote
        self.message = message
    }

    public static func drift(remote: HLCTimestamp, localWallMillis: UInt64, maxDriftMillis: UInt64) -> HLCError {
        HLCError(.drift, remote: remote, message:
            "remote clock reading \(remote) is \(remote.wallMillis - localWallMillis) ms ahead of the local wall clock "
            + "(limit \(maxDriftMillis) ms); check NTP on the sending gateway")
    }

    public var isDrift: Bool { code == .drift }
    public var description: String { message }
}
