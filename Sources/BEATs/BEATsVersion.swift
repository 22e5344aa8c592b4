/// The toolkit's version, as `beats --version` prints it.
public enum BEATsVersion {
    /// The version string, e.g. "0.3.0" (semantic versioning).
    public static let current = "0.3.0"
}
