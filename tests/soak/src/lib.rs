//! Fault soak (being written).
