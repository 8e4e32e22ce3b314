@testable import Agent
import FleetConfig
import Foundation
import OutpostCore
import Testing

/// The settings table (`Settings.all`) and its one mapping (`AgentConfiguration.set`): every
/// setting goes somewhere, and the config file, the environment and the fleet overlay read the
/// same keys with the same checks.
@Suite struct SettingsTableTests {
    static func base() throws -> AgentConfiguration {
        try AgentConfiguration.resolve(AgentConfiguration.Overrides(), environment: ["HOME": "/nonexistent"])
    }

    /// A value of `setting`'s kind that differs from any default.
    static func sample(_ setting: Setting) -> JSONValue {
        switch setting.kind {
        case .string: .string("sample-\(setting.key)")
        case .number: .number(0.37)
        case .positiveInteger, .nonNegativeInteger: .number(7)
        }
    }

    @Test func everySettingIsMappedSomewhere() throws {
        for setting in Settings.all where setting.key != "board" && setting.key != "socket.path" {
            var c = try Self.base()
            if setting.key == "mqtt.topic_root" { c.mqtt = .init(url: "mqtt://b", fleet: "f") }
            let before = c
            c.set(setting, try setting.check(Self.sample(setting)))
            #expect(c != before, "\(setting.key) changes nothing")
        }
    }

    @Test func theConfigFileReadsTheTableAndRefusesUnknownKeysByName() throws {
        let dir = try FileManager.default.url(for: .itemReplacementDirectory, in: .userDomainMask,
                                              appropriateFor: URL(fileURLWithPath: "/tmp"), create: true)
        func resolve(_ json: String) throws -> AgentConfiguration {
            let path = dir.appendingPathComponent("c.json").path
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            var o = AgentConfiguration.Overrides()
            o.configFile = path
            return try AgentConfiguration.resolve(o, environment: ["HOME": "/nonexistent"])
        }
        let c = try resolve(#"{"cache":{"ttl_s":60,"batch_size":9},"limits":{"idle_timeout_s":3},"model":{"threads":3}}"#)
        #expect(c.cache.ttlSeconds == 60 && c.cache.batchSize == 9 && c.idleTimeoutSeconds == 3 && c.threads == 3)
        for (json, named) in [(#"{"cache":{"ttl":60}}"#, "unknown key \"cache.ttl\""),
                              (#"{"cache":{"ttl_s":"60"}}"#, "cache.ttl_s must be an integer, 0 or more"),
                              (#"{"limits":{"max_connections":0}}"#, "limits.max_connections must be a positive integer"),
                              (#"{"mqtt":{"topic_root":"x"}}"#, "unknown key \"mqtt.topic_root\""),
                              (#"{"cachee":{}}"#, "unknown key \"cachee\"")] {
            #expect { _ = try resolve(json) } throws: { "\($0)".contains(named) }
        }
    }

    @Test func theEnvironmentAndFlagsGoThroughTheSameChecks() throws {
        let c = try AgentConfiguration.resolve(AgentConfiguration.Overrides(),
                                               environment: ["HOME": "/nonexistent", "OUTPOST_THREADS": "3", "OUTPOST_GATEWAY_ID": "gw-9"])
        #expect(c.threads == 3 && c.gatewayID == "gw-9")
        #expect { _ = try AgentConfiguration.resolve(AgentConfiguration.Overrides(), environment: ["OUTPOST_CTX": "abc"]) }
            throws: { "\($0)".contains("OUTPOST_CTX=abc: must be a positive integer") }
        var o = AgentConfiguration.Overrides()
        o.threads = 0
        #expect { _ = try AgentConfiguration.resolve(o, environment: [:]) } throws: { "\($0)".contains("--threads 0: must be a positive integer") }
    }

    @Test func aFleetConfigSetsOnlyWhatTheTableAllowsIt() throws {
        let settings = try FleetSettings(payload: Array(#"{"cache":{"ttl_s":120},"generation":{"top_k":5}}"#.utf8))
        let c = try Self.base().applying(settings)
        #expect(c.cache.ttlSeconds == 120 && c.defaults.topK == 5)
        // File-only settings are unknown to a fleet config, by name.
        #expect { _ = try FleetSettings(payload: Array(#"{"limits":{"idle_timeout_s":3}}"#.utf8)) }
            throws: { ($0 as? FleetConfigError)?.message.contains("limits") == true }
        #expect { _ = try FleetSettings(payload: Array(#"{"model":{"threads":3}}"#.utf8)) }
            throws: { ($0 as? FleetConfigError)?.message.contains("model.threads") == true }
    }
}
