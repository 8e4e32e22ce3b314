import OutpostCore

/// One cached answer with the attributes lookups and invalidations need. Times are wall-clock
/// milliseconds since the Unix epoch.
struct CachedEntry: Sendable {
    let key: CacheKey
    let answer: Answer
    let namespace: String
    let tags: [String]
    let hlc: HLCTimestamp
    let createdMillis: UInt64
    let expiresMillis: UInt64
    let staleUntilMillis: UInt64

    enum Freshness { case fresh, stale, expired }

    func freshness(at now: UInt64) -> Freshness {
        if now < expiresMillis { return .fresh }
        if now < staleUntilMillis { return .stale }
        return .expired
    }

    /// What the memory tier charges for the entry (`EvictionPolicy.memoryCost(of:)`).
    var memoryCost: Int { EvictionPolicy.memoryCost(of: self) }

    /// Tags in their stored form: `\u{1F}a\u{1F}b\u{1F}`, or empty. Tags never hold control
    /// characters (Query.validateLabel), so the separator cannot occur inside one.
    var storedTags: String {
        tags.isEmpty ? "" : "\u{1F}" + tags.joined(separator: "\u{1F}") + "\u{1F}"
    }

    static func tags(fromStored stored: String) -> [String] {
        stored.split(separator: "\u{1F}").map(String.init)
    }
}
