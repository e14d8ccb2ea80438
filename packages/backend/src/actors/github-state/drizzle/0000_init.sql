CREATE TABLE `branches` (
	`github_id` integer NOT NULL,
	`name` text NOT NULL,
	`sha` text NOT NULL,
	`protected` integer DEFAULT false NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`github_id`, `name`)
);
--> statement-breakpoint
CREATE TABLE `installations` (
	`installation_id` integer PRIMARY KEY NOT NULL,
	`account_login` text NOT NULL,
	`account_type` text NOT NULL,
	`repository_selection` text,
	`suspended` integer DEFAULT false NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `meta` (
	`id` integer PRIMARY KEY NOT NULL,
	`seq` integer DEFAULT 0 NOT NULL,
	`sync_state` text DEFAULT 'never' NOT NULL,
	`sync_phase` text,
	`sync_done` integer DEFAULT 0 NOT NULL,
	`sync_total` integer DEFAULT 0 NOT NULL,
	`sync_started_at` integer,
	`sync_finished_at` integer,
	`last_synced_at` integer,
	`sync_error` text
);
--> statement-breakpoint
CREATE TABLE `pull_requests` (
	`github_id` integer NOT NULL,
	`number` integer NOT NULL,
	`repo_full_name` text NOT NULL,
	`url` text NOT NULL,
	`title` text NOT NULL,
	`state` text NOT NULL,
	`head_ref` text NOT NULL,
	`head_sha` text NOT NULL,
	`base_ref` text NOT NULL,
	`checks` text DEFAULT 'none' NOT NULL,
	`review` text DEFAULT 'none' NOT NULL,
	`task_id` text,
	`notified_state` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`github_id`, `number`)
);
--> statement-breakpoint
CREATE TABLE `repositories` (
	`github_id` integer PRIMARY KEY NOT NULL,
	`installation_id` integer NOT NULL,
	`owner` text NOT NULL,
	`name` text NOT NULL,
	`full_name_key` text NOT NULL,
	`full_name` text NOT NULL,
	`default_branch` text,
	`private` integer DEFAULT true NOT NULL,
	`archived` integer DEFAULT false NOT NULL,
	`clone_url` text,
	`html_url` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `repositories_full_name_key_unique` ON `repositories` (`full_name_key`);--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`delivery_id` text PRIMARY KEY NOT NULL,
	`event` text NOT NULL,
	`received_at` integer NOT NULL
);
