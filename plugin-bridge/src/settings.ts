// Settings: the daemon's URL and the token. The token goes to Obsidian's SecretStorage where the
// app has it (1.11.4+), otherwise to the plugin's data.json.

import { App, Notice, Plugin, PluginSettingTab, Setting } from "obsidian";
import { DEFAULT_URL } from "./client";

export const SECRET_ID = "vaultlens-token";

export interface Settings {
  url: string;
  token: string; // only when SecretStorage is missing
  relatedResults: number;
}

export const DEFAULTS: Settings = { url: DEFAULT_URL, token: "", relatedResults: 8 };

interface Secrets {
  getSecret(id: string): string | null;
  setSecret(id: string, secret: string): void;
}

/** Where the token lives. */
export class TokenStore {
  constructor(private readonly app: App, private readonly settings: Settings) {}

  private get secrets(): Secrets | null {
    const store = (this.app as unknown as { secretStorage?: Secrets }).secretStorage;
    return store && typeof store.getSecret === "function" ? store : null;
  }

  get usesSecretStorage(): boolean {
    return this.secrets !== null;
  }

  get(): string {
    return this.secrets?.getSecret(SECRET_ID) ?? this.settings.token;
  }

  set(token: string): void {
    const secrets = this.secrets;
    if (secrets) {
      secrets.setSecret(SECRET_ID, token.trim());
      this.settings.token = "";
    } else {
      this.settings.token = token.trim();
    }
  }
}

export interface SettingsHost {
  settings: Settings;
  tokens: TokenStore;
  save(): Promise<void>;
  testConnection(): Promise<string>;
}

export class VaultlensSettingTab extends PluginSettingTab {
  constructor(app: App, private readonly host: Plugin & SettingsHost) {
    super(app, host);
  }

  display(): void {
    const { containerEl } = this;
    containerEl.empty();
    new Setting(containerEl)
      .setName("Daemon URL")
      .setDesc("Where `vaultlens serve` listens. Only this machine (127.0.0.1 or localhost).")
      .addText((t) => t.setPlaceholder(DEFAULT_URL).setValue(this.host.settings.url)
        .onChange(async (value) => {
          this.host.settings.url = value.trim() || DEFAULT_URL;
          await this.host.save();
        }));
    new Setting(containerEl)
      .setName("Token")
      .setDesc("Print it with `vaultlens token --vault /path/to/this/vault`. "
        + (this.host.tokens.usesSecretStorage ? "Kept in Obsidian's secret storage."
          : "Kept in this plugin's data.json."))
      .addText((t) => {
        t.inputEl.type = "password";
        t.setValue(this.host.tokens.get()).onChange(async (value) => {
          this.host.tokens.set(value);
          await this.host.save();
        });
      });
    new Setting(containerEl)
      .setName("Related results")
      .setDesc("How many hits the Related view shows.")
      .addText((t) => t.setValue(String(this.host.settings.relatedResults))
        .onChange(async (value) => {
          const n = Number.parseInt(value, 10);
          if (n > 0 && n <= 50) {
            this.host.settings.relatedResults = n;
            await this.host.save();
          }
        }));
    new Setting(containerEl)
      .setName("Test connection")
      .addButton((b) => b.setButtonText("Test").onClick(async () => {
        new Notice(await this.host.testConnection());
      }));
  }
}
