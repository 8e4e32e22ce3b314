/// A hybrid-logical-clock reading: wall-clock milliseconds since the Unix epoch in the high 48
/// bits and a logical counter in the low 16 bits, so the whole reading orders as one `UInt64`.
/// Encoded (Codable) as that number; printed as `wallMillis.logical`.
public struct HLCTimestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public static let logicalBits: UInt64 = 16
    public static let maxLogical: UInt64 = (1 << logicalBits) - 1
    public static let maxWallMillis: UInt64 = (1 << (64 - logicalBits)) - 1
    public static let zero = HLCTimestamp(rawValue: 0)

    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(wallMillis: UInt64, logical: UInt64) {
        precondition(wallMillis <= Self.maxWallMillis && logical <= Self.maxLogical, "HLC fields out of range")
        rawValue = wallMillis << Self.logicalBits | logical
    }

    /// Parses `wallMillis.logical` (the description) or a plain decimal raw value.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 2, let wall = UInt64(parts[0]), let logical = UInt64(parts[1]),
           wall <= Self.maxWallMillis, logical <= Self.maxLogical {
            self.init(wallMillis: wall, logical: logical)
        } else if parts.count == 1, let raw = UInt64(parts[0]) {
            self.init(rawValue: raw)
        } else {
            return nil
        }
    }

    public var wallMillis: UInt64 { rawValue >> Self.logicalBits }
    public var logical: UInt64 { rawValue & Self.maxLogical }

    public var description: String { "\(wallMillis).\(logical)" }

    public static func < (lhs: HLCTimestamp, rhs: HLCTimestamp) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
