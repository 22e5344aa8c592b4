/// The toolkit's version, as `beats --version` prints it.
public enum BEATsVersion {
    public static let current = "0.3.0"
}
