#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libm's exp for doubles, under a name that does not clash with members called `exp`.
@inline(__always) func expDouble(_ x: Double) -> Double { exp(x) }
/// libm's log for doubles.
@inline(__always) func logDouble(_ x: Double) -> Double { log(x) }
