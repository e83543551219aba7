"""Import TensorFlow and tf_keras quietly (the helpers live in converters._tf, the lowest
package that needs TensorFlow; see there)."""

from converters._tf import import_keras, muted_stderr, quiet_conversion  # noqa: F401
