"""Statistics for the civil-affairs bureau: summary, breakdowns, indicators, subsidy ledger, exports."""
