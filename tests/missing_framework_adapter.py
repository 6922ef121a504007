"""An adapter whose framework is not installed: importing it fails like a missing framework."""
import framework_that_is_not_installed  # noqa: F401
