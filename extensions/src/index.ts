/**
 * Clean-room workspace front end.
 *
 * Adds "Request release…" to files in the file browser (a dialog asking for a
 * justification and a description per file, sent to the server extension's
 * /cleanroom/api/releases) and a side panel listing this user's release requests
 * for this project with their state and the officers' comments.
 *
 * Everything shown from the airlock is put in the page as text, never as HTML.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

const PLUGIN_ID = 'cleanroom-workspace:plugin';
const API_PATH = 'cleanroom/api/releases';

namespace CommandIDs {
  export const requestRelease = 'cleanroom:request-release';
  export const showRequests = 'cleanroom:show-release-requests';
}

const releaseIcon = new LabIcon({
  name: 'cleanroom:release',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M12 2 4 5v6c0 5 3.4 9.7 8 11 4.6-1.3 8-6 ' +
    '8-11V5l-8-3zm-1 14-4-4 1.4-1.4 2.6 2.6 5.6-5.6L18 9l-7 7z"/></svg>'
});

/** One comment from a disclosure officer. */
interface IComment {
  author: string;
  text: string;
  time: string;
  file?: string;
}

/** A release request as the airlock lists it. */
interface IReleaseRequest {
  id: string;
  state: string;
  created: string;
  updated: string;
  justification: string;
  files: { path: string; sha256?: string; size?: number }[];
  comments?: IComment[];
}

/** What the release dialog collects. */
interface IReleaseForm {
  justification: string;
  descriptions: { [path: string]: string };
}

/** Call the server extension's release API; throws an Error with its message. */
async function callApi(method: 'GET' | 'POST', body?: unknown): Promise<any> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, API_PATH);
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
  }
  const response = await ServerConnection.makeRequest(url, init, settings);
  let data: any = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message =
      (data && data.message) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return data;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The body of the "Request release" dialog. */
class ReleaseFormBody extends Widget implements Dialog.IBodyWidget<IReleaseForm> {
  constructor(paths: string[]) {
    super();
    this.addClass('cr-ReleaseForm');
    const intro = element(
      'p',
      'cr-ReleaseForm-intro',
      'A disclosure officer will review these files before they can leave the ' +
        'clean room. The exact bytes are copied now: later edits do not change ' +
        'this request.'
    );
    this.node.appendChild(intro);
    const label = element('label', 'cr-ReleaseForm-label', 'Justification');
    this._justification = element('textarea', 'cr-ReleaseForm-justification');
    this._justification.rows = 3;
    this._justification.placeholder = 'Why must these outputs leave the clean room?';
    label.appendChild(this._justification);
    this.node.appendChild(label);
    for (const path of paths) {
      const fileLabel = element('label', 'cr-ReleaseForm-label');
      fileLabel.appendChild(element('code', 'cr-ReleaseForm-path', path));
      const description = element('textarea', 'cr-ReleaseForm-description');
      description.rows = 2;
      description.placeholder = 'What does this file contain?';
      description.dataset.path = path;
      fileLabel.appendChild(description);
      this.node.appendChild(fileLabel);
      this._descriptions.set(path, description);
    }
  }

  getValue(): IReleaseForm {
    const descriptions: { [path: string]: string } = {};
    this._descriptions.forEach((node, path) => {
      descriptions[path] = node.value.trim();
    });
    return { justification: this._justification.value.trim(), descriptions };
  }

  private _justification: HTMLTextAreaElement;
  private _descriptions = new Map<string, HTMLTextAreaElement>();
}

/** The side panel listing this user's release requests for this project. */
class ReleaseRequestsPanel extends Widget {
  constructor() {
    super();
    this.id = 'cleanroom-release-requests';
    this.addClass('cr-RequestsPanel');
    this.title.icon = releaseIcon;
    this.title.caption = 'Release requests';
    const header = element('div', 'cr-RequestsPanel-header');
    header.appendChild(element('h2', undefined, 'Release requests'));
    const refresh = element('button', 'jp-mod-styled cr-RequestsPanel-refresh', 'Refresh');
    refresh.onclick = () => void this.refresh();
    header.appendChild(refresh);
    this.node.appendChild(header);
    this._list = element('div', 'cr-RequestsPanel-list');
    this.node.appendChild(this._list);
  }

  /** Fetch the requests again and show them. */
  async refresh(): Promise<void> {
    this._list.replaceChildren(element('p', 'cr-RequestsPanel-note', 'Loading…'));
    let requests: IReleaseRequest[];
    try {
      const data = await callApi('GET');
      requests = (data && data.requests) || [];
    } catch (error) {
      this._list.replaceChildren(
        element('p', 'cr-RequestsPanel-error', (error as Error).message)
      );
      return;
    }
    if (requests.length === 0) {
      this._list.replaceChildren(
        element(
          'p',
          'cr-RequestsPanel-note',
          'No release requests yet. Right-click a file and choose "Request release…".'
        )
      );
      return;
    }
    this._list.replaceChildren(...requests.map(r => this._render(r)));
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  private _render(request: IReleaseRequest): HTMLElement {
    const item = element('div', 'cr-Request');
    item.dataset.id = request.id;
    const top = element('div', 'cr-Request-top');
    top.appendChild(element('span', `cr-Request-state cr-state-${request.state}`, request.state));
    top.appendChild(element('span', 'cr-Request-date', request.updated || request.created));
    item.appendChild(top);
    item.appendChild(element('p', 'cr-Request-justification', request.justification));
    const files = element('ul', 'cr-Request-files');
    for (const file of request.files || []) {
      files.appendChild(element('li', undefined, file.path));
    }
    item.appendChild(files);
    const comments = request.comments || [];
    if (comments.length > 0) {
      const list = element('ul', 'cr-Request-comments');
      for (const comment of comments) {
        const entry = element('li', 'cr-Comment');
        const who = comment.file ? `${comment.author} on ${comment.file}` : comment.author;
        entry.appendChild(element('span', 'cr-Comment-author', who));
        entry.appendChild(element('span', 'cr-Comment-text', comment.text));
        list.appendChild(entry);
      }
      item.appendChild(list);
    }
    return item;
  }

  private _list: HTMLDivElement;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Request release of files from a clean-room workspace.',
  autoStart: true,
  requires: [IFileBrowserFactory],
  activate: (app: JupyterFrontEnd, factory: IFileBrowserFactory) => {
    const panel = new ReleaseRequestsPanel();
    app.shell.add(panel, 'left', { rank: 900 });

    app.commands.addCommand(CommandIDs.showRequests, {
      label: 'Release Requests',
      caption: 'Show your release requests for this project',
      execute: () => {
        app.shell.activateById(panel.id);
        return panel.refresh();
      }
    });

    app.commands.addCommand(CommandIDs.requestRelease, {
      label: 'Request release…',
      caption: 'Ask a disclosure officer to release the selected files',
      icon: releaseIcon,
      isEnabled: () => {
        const browser = factory.tracker.currentWidget;
        if (!browser) {
          return false;
        }
        return Array.from(browser.selectedItems()).some(i => i.type !== 'directory');
      },
      execute: async () => {
        const browser = factory.tracker.currentWidget;
        if (!browser) {
          return;
        }
        const paths = Array.from(browser.selectedItems())
          .filter(item => item.type !== 'directory')
          .map(item => item.path);
        if (paths.length === 0) {
          return;
        }
        const result = await showDialog<IReleaseForm>({
          title: 'Request release',
          body: new ReleaseFormBody(paths),
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit request' })],
          focusNodeSelector: 'textarea'
        });
        if (!result.button.accept || !result.value) {
          return;
        }
        const form = result.value;
        try {
          await callApi('POST', {
            paths,
            justification: form.justification,
            descriptions: form.descriptions
          });
        } catch (error) {
          await showErrorMessage('Release request not submitted', (error as Error).message);
          return;
        }
        await app.commands.execute(CommandIDs.showRequests);
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.requestRelease,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 1
    });
  }
};

export default plugin;
