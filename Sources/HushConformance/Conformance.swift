public enum Conformance {}
