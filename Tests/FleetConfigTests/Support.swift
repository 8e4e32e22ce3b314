import Foundation
@testable import FleetConfig

/// Keys and envelopes for the tests.
enum Fleet {
    static let now: Int64 = 1_764_000_000
    static let ops = SigningKey.generate(keyID: "ops")
    static let ops2 = SigningKey.generate(keyID: "ops-2027")
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func fixture(_ name: String) throws -> Data { try Data(contentsOf: fixtures.appendingPathComponent(name)) }

    static func verifier(keys: [SigningKey] = [ops], gateway: String? = "gw-1",
                         zstd: (@Sendable ([UInt8], Int) throws -> [UInt8])? = nil) -> ConfigVerifier {
        ConfigVerifier(trustedKeys: keys.map(\.trustedKey), gatewayID: gateway, zstdDecompress: zstd)
    }

    static func signed(_ payload: String, version: UInt64, key: SigningKey = ops, target: String = "fleet",
                       encoding: String = "json", expiresAt: Int64? = nil) throws -> Data {
        try key.sign(payload: Array(payload.utf8), version: version, target: target, encoding: encoding,
                     issuedAt: now - 10, expiresAt: expiresAt).encoded()
    }

    /// Edits an envelope's JSON fields and re-encodes it (the signature is kept as it was).
    static func tamper(_ data: Data, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        var o = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        edit(&o)
        return try JSONSerialization.data(withJSONObject: o)
    }
}

/// Expects `body` to throw a FleetConfigError with this reason; returns it.
@discardableResult
func expectFailure(_ reason: String, _ body: () throws -> Void) -> FleetConfigError? {
    do {
        try body()
    } catch let error as FleetConfigError {
        if error.reason != reason { Issue.record("expected \(reason), got \(error.reason): \(error.message)") }
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
    Issue.record("expected a \(reason) failure, nothing was thrown")
    return nil
}

import Testing
