"""Who looks after each school of a project and what it aims at (seed 004: 一校一台账, 责任划分制, 目标任务制): the
owner (A role) and the backup (B role) of each school, each person the owner of at most 5 schools and the backup
of at most 5, and targets for parent and teacher adoption with the day they are due. Schools themselves are
groups of the event store (type `school`); this keeps only what people decide about them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Date, Float, ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column

from edupulse.meta.db import MetadataError, MetadataStore
from edupulse.meta.models import Base, utcnow

MAX_SCHOOLS_PER_PERSON = 5  # seed 004: 每个业务人员负责5个学校


class SchoolAccount(Base):
    __tablename__ = "school_accounts"
    __table_args__ = (UniqueConstraint("project_id", "school_id", name="uq_school_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    school_id: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    parent_target: Mapped[float | None] = mapped_column(Float, nullable=True)
    teacher_target: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(254), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class AccountInfo:
    """What is decided about one school (None where nothing is)."""

    school_id: str
    owner_id: int | None = None
    backup_id: int | None = None
    parent_target: float | None = None
    teacher_target: float | None = None
    target_date: dt.date | None = None
    updated_by: str = ""


def _info(row: SchoolAccount) -> AccountInfo:
    return AccountInfo(row.school_id, row.owner_id, row.backup_id, row.parent_target, row.teacher_target,
                       row.target_date, row.updated_by)


class SchoolAccounts:
    """The school accounts of one metadata database."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def of_project(self, project_id: int) -> dict[str, AccountInfo]:
        with self.meta.session() as s:
            rows = s.scalars(select(SchoolAccount).where(SchoolAccount.project_id == project_id))
            return {r.school_id: _info(r) for r in rows}

    def get(self, project_id: int, school_id: str) -> AccountInfo:
        return self.of_project(project_id).get(school_id) or AccountInfo(school_id)

    def save(self, project_id: int, account: AccountInfo, user: str) -> AccountInfo:
        """Set a school's owner, backup and targets (all of them: None clears one). MetadataError says why not:
        the owner is the backup, a target outside 0..1, or a person already owning (backing) 5 other schools."""
        if account.owner_id is not None and account.owner_id == account.backup_id:
            raise MetadataError("owner and backup must be two people (the A and B roles)")
        for name, target in (("parent_target", account.parent_target), ("teacher_target", account.teacher_target)):
            if target is not None and not 0 < target <= 1:
                raise MetadataError(f"{name} {target}: a share above 0 and at most 1 (0.6 = 60 %)")
        with self.meta.session() as s, s.begin():
            for column, person in ((SchoolAccount.owner_id, account.owner_id),
                                   (SchoolAccount.backup_id, account.backup_id)):
                if person is None:
                    continue
                others = s.scalar(select(func.count()).select_from(SchoolAccount).where(
                    SchoolAccount.project_id == project_id, column == person,
                    SchoolAccount.school_id != account.school_id))
                if (others or 0) >= MAX_SCHOOLS_PER_PERSON:
                    role = "owner" if column is SchoolAccount.owner_id else "backup"
                    raise MetadataError(f"user {person} is already the {role} of {others} schools; "
                                        f"at most {MAX_SCHOOLS_PER_PERSON} per person")
            row = s.scalar(select(SchoolAccount).where(SchoolAccount.project_id == project_id,
                                                       SchoolAccount.school_id == account.school_id))
            if row is None:
                row = SchoolAccount(project_id=project_id, school_id=account.school_id)
                s.add(row)
            row.owner_id, row.backup_id = account.owner_id, account.backup_id
            row.parent_target, row.teacher_target = account.parent_target, account.teacher_target
            row.target_date, row.updated_by, row.updated_at = account.target_date, user, utcnow()
            s.flush()
            return _info(row)
