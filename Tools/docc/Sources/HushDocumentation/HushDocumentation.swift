// This package exists to build Hush's documentation (see Package.swift); it adds no code.
@_exported import Hush
