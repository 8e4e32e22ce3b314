// swift-tools-version: 6.1
// Outpost: a long-running agent for ARM edge gateways. See README.md and ../shared/DESIGN.md.
import PackageDescription

let package = Package(
    name: "Outpost",
    platforms: [.macOS(.v15)],  // Synchronization.Atomic and Mutex need macOS 15
    products: [
        .executable(name: "outpost", targets: ["outpost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // No default traits: they pull in swift-configuration and full Foundation, which the agent does not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already in the graph through Hummingbird; named because LocalAPI imports them directly.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // System libraries (module map + shim.h; found with pkg-config, installed with apt).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Low-bit kernels (C, libc only): block formats, (de)quantization, vec-dot and mat-vec with
        // scalar, AVX2 and NEON paths chosen at start-up. SIMD via per-function target attributes.
        .target(name: "CQuants"),

        // Leaf modules.
        .target(name: "GGUF"),
        // The MQTT transport: libmosquitto client, connection with its reconnect state machine, broker URL.
        .target(name: "MQTT", dependencies: ["CMosquitto"]),
        // Invalidation sync, watermarks, status, over MQTT; hands request messages to its handler.
        .target(name: "PeerSync", dependencies: ["OutpostCore", "MQTT"]),
        // The MQTT request door (the twin of LocalAPI): PeerSync's request handler, wired by Agent.
        .target(name: "MQTTDoor", dependencies: ["OutpostCore", "MQTT"]),
        .target(
            name: "LocalAPI",
            dependencies: [
                "OutpostCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(name: "OutpostCore", dependencies: ["CCrypto"]),
        .target(name: "AnswerCache", dependencies: ["OutpostCore", "CSQLite", "CZstd"]),
        // Signed fleet configuration: verify, persist, apply, roll back. zstd payloads are decoded
        // by a closure the composition root passes in (AnswerCache's wrapper), so this stays a leaf.
        .target(
            name: "FleetConfig",
            dependencies: ["OutpostCore"]
        ),

        // The composition root.
        .target(
            name: "Agent",
            dependencies: [
                "AnswerCache", "CQuants", "FleetConfig", "GGUF", "Inference", "LocalAPI", "MQTT", "MQTTDoor", "OutpostCore", "PeerSync",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "Inference", dependencies: ["GGUF", "CQuants"]),

        // The command-line executable.
        .executableTarget(
            name: "outpost",
            dependencies: [
                "GGUF",
                "CQuants",
                "AnswerCache",
                "FleetConfig",
                "OutpostCore",
                "Inference",
                "Agent",
                "MQTT",
                "PeerSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // The fleet benchmark (scripts/bench-fleet.sh): N gateways on one broker, in one process.
        .executableTarget(name: "FleetBench", dependencies: ["MQTT", "MQTTDoor", "PeerSync", "AnswerCache", "OutpostCore"]),

        // Test support: broker launcher, temp dirs, fixtures. Used by tests only.
        .target(name: "OutpostTesting"),

        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "Inference", "OutpostTesting"]),
        .testTarget(name: "PeerSyncTests", dependencies: ["MQTT", "MQTTDoor", "PeerSync", "OutpostCore", "AnswerCache", "Inference", "OutpostTesting"]),
        .testTarget(name: "OutpostCLITests", dependencies: ["outpost", "OutpostTesting"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "FleetConfig", "Inference", "LocalAPI", "OutpostCore", "MQTT", "MQTTDoor", "PeerSync", "outpost", "OutpostTesting"]),
        .testTarget(name: "CQuantsTests", dependencies: ["CQuants", "GGUF", "OutpostTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "FleetConfigTests", dependencies: ["FleetConfig", "OutpostCore", "OutpostTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "OutpostCoreTests", dependencies: ["OutpostCore", "Inference", "OutpostTesting"]),
        .testTarget(name: "AnswerCacheTests", dependencies: ["AnswerCache", "OutpostCore", "OutpostTesting", "CSQLite", "CZstd"]),
        // The API in-process on a Unix socket, in front of a scripted service (no model, no agent).
        .testTarget(
            name: "LocalAPITests",
            dependencies: ["LocalAPI", "OutpostCore", "OutpostTesting", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "GGUF", "OutpostTesting"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6],
    cLanguageStandard: .gnu11
)
