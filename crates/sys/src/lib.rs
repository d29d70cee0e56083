//! OS glue.
