//! The loop fed with events, its outputs snapshotted.
