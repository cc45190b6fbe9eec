//! The page's callbacks for one kind of notice (another tab's, this tab's session events).

use std::cell::RefCell;
use std::rc::Rc;

/// A shared list of callbacks. Each notice goes to a copy of the list, so a callback may add
/// another (a page that subscribes from inside a callback) without a double borrow.
pub(crate) struct Listeners<T>(Rc<RefCell<Vec<Rc<dyn Fn(&T)>>>>);

impl<T> Clone for Listeners<T> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<T> Default for Listeners<T> {
    fn default() -> Self {
        Self(Rc::default())
    }
}

impl<T> Listeners<T> {
    pub(crate) fn add(&self, listener: impl Fn(&T) + 'static) {
        self.0.borrow_mut().push(Rc::new(listener));
    }

    pub(crate) fn notify(&self, notice: &T) {
        let listeners = self.0.borrow().clone();
        for listener in listeners {
            listener(notice);
        }
    }
}
