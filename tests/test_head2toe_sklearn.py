"""Head2Toe and Head2ToeCV under scikit-learn's own estimator checks.

Both take a dict of per-layer features *or* an (n, D) array; the checks feed arrays, so
most apply.  Those that cannot apply, and why, are listed in :data:`NOT_APPLICABLE`; every
other check must pass (a check listed here that starts passing fails the test too: sklearn
reports it as an unexpected pass, so the list stays true).
"""
import pytest
import sklearn.base
from sklearn.utils.estimator_checks import parametrize_with_checks

from transfer_nb.head2toe import Head2Toe, Head2ToeCV

#: check -> why it cannot apply to Head2Toe (the same for Head2ToeCV)
NOT_APPLICABLE = {
    "check_complex_data": "inputs go through the library's one feature validator, whose "
                          "message names the features' dtype in its own words",
    "check_dtype_object": "object arrays are refused on purpose (features are numbers from a "
                          "network), by the library's validator",
    "check_estimators_empty_data_messages": "the library's validator words the empty-input "
                                            "error itself",
    "check_estimator_sparse_tag": "features from a network are dense; sparse input is "
                                  "refused by the library's validator",
    "check_estimator_sparse_array": "as above (sparse refused, in the library's words)",
    "check_estimator_sparse_matrix": "as above (sparse refused, in the library's words)",
    "check_classifiers_classes": "decision_function returns K logits also for two classes "
                                 "(a softmax head, as in the paper), not sklearn's (n,) "
                                 "binary convention",
    "check_classifiers_train": "same: (n, 2) logits for binary problems; and sklearn's "
                               "accuracy bar assumes a converged model on 2-feature toy data",
    "check_supervised_y_2d": "a column vector y is refused with a message, not raveled "
                             "with a warning",
    "check_transformer_preserve_dtypes": "transform returns float32: the heads are torch "
                                         "float32 linear layers",
    "check_fit2d_1sample": "one sample is one class; the message says so in the library's "
                           "words",
    "check_fit2d_predict1d": "the library's validator words the 1-D error itself",
}


def _checks(estimator):
    if isinstance(estimator, Head2ToeCV):
        # the search checks the labels before the features: complex labels fail first,
        # with sklearn's own wording, so this check passes for it
        return {k: v for k, v in NOT_APPLICABLE.items() if k != "check_complex_data"}
    return NOT_APPLICABLE


@parametrize_with_checks([Head2Toe(0.5, steps=20, batch_size=64),
                          Head2ToeCV((0.5, 1.0), (1e-4,), n_folds=2, steps=10)],
                         expected_failed_checks=_checks)
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [Head2Toe(0.3, 1e-3, steps=7, lr=0.05, seed=4),
                                       Head2ToeCV((0.2, 0.4), (1e-5,), 2, steps=5, seed=1)])
def test_clone_round_trips_parameters(estimator):
    clone = sklearn.base.clone(estimator)
    assert clone is not estimator
    assert clone.get_params() == estimator.get_params()


def test_fit_never_rewrites_parameters():
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 6))
    y = np.repeat([0, 1, 2], 8)
    X[np.arange(24), y] += 5.0          # feature k marks class k
    cv = Head2ToeCV((0.2, 0.5), (1e-5, 1e-3), n_folds=2, steps=200, lr=0.05, seed=0)
    before = cv.get_params()
    cv.fit(X, y)
    assert cv.get_params() == before
    assert set(cv.best_params_) == {"keep_fraction", "group_lasso"}
    assert cv.best_params_["keep_fraction"] in (0.2, 0.5)
    assert isinstance(cv.best_estimator_, Head2Toe)
    assert cv.best_estimator_.keep_fraction == cv.best_params_["keep_fraction"]
    assert len(cv.cv_results_) == 4
    assert cv.score(X, y) == cv.best_estimator_.score(X, y) > 0.9
    h = Head2Toe(keep_fraction=1, steps="3")
    with pytest.raises(ValueError, match="steps must be an integer"):
        h.fit(X, y)
    assert h.steps == "3" and h.keep_fraction == 1
