/// Lets at most `burst` notices of each kind through per `intervalNanos`, and says how many of
/// that kind were held back since the last one let through (so the next line carries the count).
/// Shared by PeerSync and the request door. A plain value, tested without I/O.
public struct LogRateLimiter: Sendable {
    /// The notices' rate limit: at most this many of each kind per `defaultIntervalNanos`.
    public static let defaultBurst = 10
    public static let defaultIntervalNanos: UInt64 = 10_000_000_000

    public let burst: Int
    public let intervalNanos: UInt64
    private var windows: [String: (start: UInt64, passed: Int, suppressed: Int)] = [:]

    public init(burst: Int = Self.defaultBurst, intervalNanos: UInt64 = Self.defaultIntervalNanos) {
        self.burst = max(1, burst)
        self.intervalNanos = intervalNanos
    }

    /// nil: hold this one back; else let it through, with the number held back before it.
    public mutating func admit(_ kind: String, now: UInt64) -> Int? {
        var w = windows[kind] ?? (now, 0, 0)
        if now &- w.start >= intervalNanos || w.start > now {
            w.start = now
            w.passed = 0
        }
        defer { windows[kind] = w }
        guard w.passed < burst else {
            w.suppressed += 1
            return nil
        }
        w.passed += 1
        let held = w.suppressed
        w.suppressed = 0
        return held
    }

    /// At most 256 characters of `text`, control characters shown as `?` (it goes into a log line).
    public static func printable(_ text: String) -> String {
        var out = String(String.UnicodeScalarView(text.unicodeScalars.prefix(256).map {
            $0.value < 0x20 || (0x7F...0x9F).contains($0.value) ? "?" : $0
        }))
        if text.unicodeScalars.count > 256 { out += "…" }
        return out
    }
}
