#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// POSIX path arithmetic on strings ('/' separated), in place of NSString's path methods, which
// full Foundation has and FoundationEssentials does not.
public enum Paths {
    /// `base` + "/" + `component`, with exactly one slash between them; an absolute `component` is
    /// appended as well (as NSString does), not substituted.
    public static func join(_ base: String, _ component: String) -> String {
        if base.isEmpty { return component }
        if component.isEmpty { return base }
        let left = base.hasSuffix("/") ? String(base.dropLast()) : base
        let right = component.hasPrefix("/") ? String(component.dropFirst()) : component
        return left + "/" + right
    }

    /// The last component: "/a/b.gguf" → "b.gguf", "/a/b/" → "b".
    public static func lastComponent(_ path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return trimmed == "/" ? "/" : String(trimmed[trimmed.index(after: slash)...])
    }

    /// The directory part: "/a/b" → "/a", "/a" → "/", "b" → "".
    public static func directory(_ path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// The name without its extension: "b.gguf" → "b", ".hidden" → ".hidden".
    public static func deletingExtension(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }
}

/// The user's home directory: `$HOME`, else the password database, else "/".
public func homeDirectory() -> String {
    if let h = getenv("HOME"), h.pointee != 0 { return String(cString: h) }
    if let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir { return String(cString: dir) }
    return "/"
}
