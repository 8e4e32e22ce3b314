import FleetConfig
import Foundation
import OutpostCore
import Testing

/// The `members` section: gateway ids with their member keys, checked by name like every other key.
@Suite struct MembersSettingsTests {
    static let key = Data(Ed25519.PrivateKey().publicKey.rawRepresentation).base64EncodedString()

    @Test func listedKeysAreRead() throws {
        let s = try FleetSettings(payload: Array(#"{"members":{"gw-1":"\#(Self.key)","gw-2":"\#(Self.key)"}}"#.utf8))
        #expect(s.members.count == 2)
        #expect(Data(try #require(s.members["gw-1"]).rawRepresentation).base64EncodedString() == Self.key)
        // A gateway config adds to the fleet's list and may replace one key.
        let other = Data(Ed25519.PrivateKey().publicKey.rawRepresentation).base64EncodedString()
        let merged = s.merged(with: try FleetSettings(payload: Array(#"{"members":{"gw-2":"\#(other)","gw-3":"\#(other)"}}"#.utf8)))
        #expect(merged.members.count == 3)
        #expect(Data(try #require(merged.members["gw-2"]).rawRepresentation).base64EncodedString() == other)
        // Read back from its encoding.
        #expect(try FleetSettings(payload: Array(merged.encoded())).members == merged.members)
    }

    @Test func badEntriesAreRefusedByName() {
        let cases: [(String, String)] = [
            (#"{"members":[]}"#, "\"members\" must be an object"),
            (#"{"members":{"gw-1":"abc"}}"#, "members.gw-1 must be an Ed25519 public key"),
            (#"{"members":{"gw-1":7}}"#, "members.gw-1 must be an Ed25519 public key"),
            (#"{"members":{"gw/1":"\#(Self.key)"}}"#, "is not a gateway id"),
            (#"{"members":{"":"\#(Self.key)"}}"#, "is not a gateway id"),
        ]
        for (payload, expected) in cases {
            #expect {
                _ = try FleetSettings(payload: Array(payload.utf8))
            } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }
}
