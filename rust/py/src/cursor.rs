//! `mosaik.Cursor` and `mosaik.ApplyContext` as native classes: the apply
//! thread makes one of each per applied command, so they are built here,
//! without running Python code, when committed entries are handed over.

use pyo3::prelude::*;

use crate::ids::hash_of;

/// A log position (`term`, `index`): ordered by term, then index.
#[pyclass(name = "Cursor", module = "mosaik", frozen, eq, ord, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PyCursor {
    #[pyo3(get)]
    term: u64,
    #[pyo3(get)]
    index: u64,
}

impl PyCursor {
    pub fn at(term: u64, index: u64) -> Self {
        PyCursor { term, index }
    }
}

#[pymethods]
impl PyCursor {
    #[new]
    fn new(term: u64, index: u64) -> Self {
        PyCursor { term, index }
    }

    fn __hash__(&self) -> u64 {
        hash_of(self)
    }

    fn __repr__(&self) -> String {
        format!("Cursor(term={}, index={})", self.term, self.index)
    }
}

/// What `apply` is told; the same on every node for the same index. For
/// `apply` both cursors are the position of the command applied; for
/// `apply_batch` they are the position of the batch's last command.
#[pyclass(name = "ApplyContext", module = "mosaik", frozen, eq)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PyApplyContext {
    #[pyo3(get)]
    committed: PyCursor,
    #[pyo3(get)]
    log_position: PyCursor,
    #[pyo3(get)]
    current_term: u64,
}

impl PyApplyContext {
    /// The context of the command at (`term`, `index`).
    pub fn at(term: u64, index: u64) -> Self {
        let position = PyCursor::at(term, index);
        PyApplyContext {
            committed: position,
            log_position: position,
            current_term: term,
        }
    }
}

#[pymethods]
impl PyApplyContext {
    #[new]
    fn new(committed: PyCursor, log_position: PyCursor, current_term: u64) -> Self {
        PyApplyContext {
            committed,
            log_position,
            current_term,
        }
    }

    fn __hash__(&self) -> u64 {
        hash_of(self)
    }

    fn __repr__(&self) -> String {
        format!(
            "ApplyContext(committed={}, log_position={}, current_term={})",
            self.committed.__repr__(),
            self.log_position.__repr__(),
            self.current_term
        )
    }
}
