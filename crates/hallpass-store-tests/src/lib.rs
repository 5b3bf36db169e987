//! The storage conformance suite: what every [`Store`](hallpass_core::Store) backend must do, stated once and run
//! unchanged against each of them.
//!
//! A backend runs it from its `tests/conformance.rs`:
//!
//! ```ignore
//! async fn make() -> (std::sync::Arc<dyn hallpass_core::Store>, Box<dyn std::any::Any + Send>) {
//!     // a fresh, empty store, and a guard (a temporary directory...) kept alive meanwhile
//! }
//! hallpass_store_tests::conformance!(make);
//! ```
//!
//! [`conformance!`] expands to one `#[tokio::test]` per case of [`cases`], each on a fresh
//! store. The list of cases lives in one place, the `__with_cases!` macro below, so a case
//! added there reaches every backend (and [`CASE_NAMES`]).
//!
//! Cases use fixed instants in whole milliseconds (the precision every backend keeps), so
//! a value read back compares equal to the value written and nothing depends on the
//! system clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Expands to one `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per case
/// of [`cases`]; each calls `make().await` for a fresh store and a guard that lives until
/// the case ends. `make` is an `async fn() -> (Arc<dyn Store>, Box<dyn Any + Send>)`.
#[macro_export]
macro_rules! conformance {
    (optional $make:path) => {
        $crate::__with_cases!([optional $make]);
    };
    ($make:path) => {
        $crate::__with_cases!([tests $make]);
    };
}

/// The one list of case names. Hands it to `__expand_cases!` with a mode.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($mode:tt) => {
        $crate::__expand_cases! { $mode
            ping_answers,
            insert_and_find_user,
            username_and_email_are_unique_per_scope,
            update_user_conflicts,
            concurrent_registration_has_one_winner,
            list_users_pages_by_id,
            list_users_filters,
            update_user_applies_patch,
            deactivation_ends_sessions,
            delete_user_removes_dependents_keeps_events,
            set_password_hash_ends_sessions,
            rehash_password_compare_and_swap,
            insert_login_stores_session_event_and_last_login,
            max_sessions_ends_the_oldest,
            login_of_a_missing_user_stores_nothing,
            freshen_never_moves_expiry_backwards,
            patch_session_data_merges,
            patch_session_data_over_the_cap_changes_nothing,
            delete_session_variants,
            list_sessions_valid_newest_first,
            new_code_voids_older_of_same_kind,
            set_password_hash_voids_codes,
            email_change_voids_codes,
            update_without_password_or_email_change_keeps_codes,
            redeem_reset_code_semantics,
            concurrent_redeem_is_single_use,
            redeem_confirm_and_login_codes,
            code_owner_reads_without_consuming,
            request_code_counts_known_and_unknown_alike,
            request_code_for_nobody_leaves_nothing_redeemable,
            identities_link_find_and_unlink,
            flows_take_once_by_kind_and_scope,
            flows_expire_and_are_swept,
            concurrent_flow_takes_have_one_winner,
            totp_enrol_confirm_and_steps,
            totp_concurrent_steps_have_one_winner,
            passkeys_stored_used_renamed_and_removed,
            totp_removal_keeps_passkeys,
            recovery_codes_single_use_and_removal,
            identity_taken_by_another_user,
            events_newest_first_with_cursor,
            login_stats_hour_buckets,
            login_stats_day_buckets,
            sweep_expired_respects_validity_and_batch,
            count_valid_sessions_counts_every_scope_at_an_instant,
            api_keys_insert_find_list_revoke,
            api_keys_record_their_last_use,
            scope_isolation,
            export_pages_in_scope_and_id_order,
            import_round_trip_keeps_every_field,
            import_again_changes_nothing,
            import_reports_conflicts_and_inserts_the_rest,
            second_factors_travel_with_their_users,
            throttle_hits_count_and_expire,
            throttle_concurrent_hits_all_count,
            throttle_clear_and_isolation,
            throttle_update_hits_undoes_and_clears,
            throttle_update_reservations_count_under_concurrency,
            throttle_sweep_removes_expired,
            admin_scope_round_trips,
            audit_newest_first_with_cursor,
            scope_figures_count_per_scope,
            outcome_stats_count_every_outcome,
            enqueue_writes_user_code_and_rows_together,
            enqueue_writes_nothing_on_conflict,
            request_code_queues_its_mail_only_for_the_user,
            outbox_claim_takes_due_rows_once,
            outbox_concurrent_claimers_never_share_a_row,
            outbox_update_needs_the_lease,
            outbox_in_doubt_is_never_reclaimed_until_retried,
            outbox_final_states_scrub_and_set_confirmation,
            outbox_stats_and_list,
            update_user_enqueue_changes_and_queues_together,
            insert_login_queues_its_notice_with_it,
            outbox_purge_sent_deletes_only_old_sent_rows,
            webhook_endpoints_per_scope,
            webhook_deliveries_commit_with_their_change,
            factor_and_link_deliveries_commit_with_their_change,
            webhook_claims_skip_busy_lanes_and_retries_requeue,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __expand_cases {
    ([tests $make:path] $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $make().await;
                $crate::cases::$case(store).await;
            }
        )*
    };
    ([optional $make:path] $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                // `None`: the backend's server is unreachable outside CI; `make` printed why.
                let Some((store, _guard)) = $make().await else { return };
                $crate::cases::$case(store).await;
            }
        )*
    };
    ([names] $($case:ident),* $(,)?) => {
        /// The name of every case, in the order the suite lists them.
        pub const CASE_NAMES: &[&str] = &[$(stringify!($case)),*];
    };
}

__with_cases!([names]);

pub mod cases;
pub mod fixtures;
pub mod speed;
