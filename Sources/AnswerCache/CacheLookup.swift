import OutpostCore

/// The outcome of a lookup.
public enum CacheLookup: Sendable, Equatable {
    /// Within its TTL.
    case fresh(Answer)
    /// Past its TTL but inside the stale-while-revalidate window: serve it, and refresh it.
    case stale(Answer)
    case miss

    public var answer: Answer? {
        switch self {
        case .fresh(let a), .stale(let a): return a
        case .miss: return nil
        }
    }
}

/// The outcome of a fill, for the caller's information only (a fill never waits or throws).
public enum FillResult: Sendable, Equatable {
    /// Queued for the next flush, stamped with this clock reading.
    case queued(HLCTimestamp)
    /// Replaced a queued fill for the same key.
    case coalesced(HLCTimestamp)
    /// A tombstone at least as new as the fill covers it, or it is older than the tombstone horizon.
    case discarded
    /// The queue was full, or the answer over `maxAnswerBytes`; counted in `fills_dropped`.
    case dropped
    /// The cache is closed.
    case closed
}

/// An answer from `AnswerCache.value(for:…)` and where it came from.
public struct CachedValue: Sendable, Equatable {
    public enum Source: String, Sendable, Equatable {
        case fresh, stale, computed
    }

    public let answer: Answer
    public let source: Source
}
